# mtad — build, test, run.  See README.md.
#
#   make            build build/sbin/{mtad,mtactl}, build/libexec/mtad/*
#   make check      install missing test deps, build, run every test
#   make fuzz       build the libFuzzer targets into build-fuzz/ (fuzz/README)
#   make bench      mtad against Postfix (BENCHMARKS.md); not part of check
#   make run        build, then run mtad in the foreground on 127.0.0.1:2525
#   make deps       install missing Debian packages (quiet when all present)
#   make SAN=1      build with AddressSanitizer + UBSan into build-san/
#   make install    PREFIX (/usr/local), SYSCONFDIR (/etc), SYSTEMDDIR,
#                   DESTDIR; the config is never overwritten.  make uninstall

PREFIX	?= /usr/local
DESTDIR	?=
SYSCONFDIR ?= /etc
SYSTEMDDIR ?= $(PREFIX)/lib/systemd/system
CC	?= cc
PKGS	 = libevent openssl ldns librabbitmq json-c libconfig

ifeq ($(SAN),1)
BUILD	?= build-san
SANFLAGS = -fsanitize=address,undefined -fno-sanitize-recover=undefined \
	   -fno-omit-frame-pointer
OPT	 = -O1
else
BUILD	?= build
SANFLAGS =
OPT	 = -O2
endif

PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null)

CFLAGS	+= -std=gnu11 $(OPT) -g -Wall -Wextra -Werror -Wshadow \
	   -Wno-unused-parameter -Wmissing-prototypes -D_GNU_SOURCE \
	   -Icommon $(PKG_CFLAGS) $(SANFLAGS) -MMD -MP
LDFLAGS	+= $(SANFLAGS) -pthread
LDLIBS	+= $(PKG_LIBS)

OBJ	 = $(BUILD)/obj
PROGS	 = $(BUILD)/sbin/mtad $(BUILD)/sbin/mtactl \
	   $(BUILD)/libexec/mtad/smtpd $(BUILD)/libexec/mtad/qmgr \
	   $(BUILD)/libexec/mtad/smtp $(BUILD)/libexec/mtad/resolver

objs	 = $(patsubst %.c,$(OBJ)/%.o,$(wildcard $(1)/*.c))

COMMON_OBJS	:= $(call objs,common)
LIBCOMMON	 = $(OBJ)/libcommon.a

all: $(PROGS)

.SECONDEXPANSION:
.SECONDARY:

$(OBJ)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c -o $@ $<

$(LIBCOMMON): $(COMMON_OBJS)
	@mkdir -p $(dir $@)
	rm -f $@ && $(AR) rcs $@ $^

$(BUILD)/sbin/mtad: $(call objs,master) $(LIBCOMMON)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/sbin/mtactl: $(call objs,mtactl) $(LIBCOMMON)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/libexec/mtad/%: $$(call objs,$$*) $(LIBCOMMON)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

# --- tests ---------------------------------------------------------------
UNIT_TESTS := $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(wildcard tests/unit/test_*.c))

$(BUILD)/tests/%: $(OBJ)/tests/unit/%.o $(LIBCOMMON)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS) -lcmocka

unit: $(UNIT_TESTS)
	@set -e; for t in $(UNIT_TESTS); do echo "== $$t"; \
	    (cd tests/unit && CMOCKA_MESSAGE_OUTPUT=stdout $(CURDIR)/$$t); done

PYTEST	 = /usr/bin/python3 -m pytest
PYTEST_ARGS ?= -q

check: deps
	$(MAKE) all
	$(MAKE) unit
	$(MAKE) SAN=1 all
	$(MAKE) SAN=1 unit
	$(MAKE) lint-conf
	$(MAKE) fuzz-check
	MTAD_BUILD=$(CURDIR)/build-san $(PYTEST) $(PYTEST_ARGS) tests/integration

lint-conf: $(BUILD)/sbin/mtad
	/usr/bin/python3 tests/check_conf_doc.py $(BUILD)/sbin/mtad man/mtad.conf.5 conf/mtad.conf

# --- fuzzing (libFuzzer, clang, ASan + UBSan; see fuzz/) ----------------------
# make fuzz: the targets in build-fuzz/fuzz/; make fuzz-check: each runs
# FUZZ_TIME seconds on tests/fuzz/NAME and fails on any finding.
FUZZ_BUILD	 = build-fuzz
FUZZ_TIME	?= 6
FUZZ_SAN	 = -fsanitize=fuzzer-no-link,address,undefined \
		   -fno-sanitize-recover=undefined -fno-omit-frame-pointer
FUZZ_NAMES	 = $(patsubst fuzz/%.c,%,$(wildcard fuzz/fuzz_*.c))
FUZZ_BINS	 = $(patsubst %,$(BUILD)/fuzz/%,$(FUZZ_NAMES))

fuzz:
	$(MAKE) CC=clang BUILD=$(FUZZ_BUILD) OPT=-O1 SANFLAGS="$(FUZZ_SAN)" \
	    fuzz-bins

fuzz-bins: $(FUZZ_BINS)

$(BUILD)/fuzz/%: $(OBJ)/fuzz/%.o $(LIBCOMMON)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) -fsanitize=fuzzer -o $@ $^ $(LDLIBS)

fuzz-check: fuzz
	sh fuzz/check.sh $(FUZZ_BUILD) $(FUZZ_TIME) $(FUZZ_NAMES)

# --- benchmarks (bench/, BENCHMARKS.md; not part of check) ------------------
# Installs Debian's postfix if missing (no configuration, not started),
# builds the optimized tree, runs every scenario and rewrites the table in
# BENCHMARKS.md.  BENCH_ARGS: e.g. --quick, --only 1,3, --perf 1.
BENCH_ARGS ?=
bench: deps
	@[ "$(SAN)" != 1 ] || { echo "make bench: not with SAN=1"; exit 1; }
	sh bench/install-postfix.sh
	$(MAKE) all
	/usr/bin/python3 bench/run.py --build $(CURDIR)/$(BUILD) $(BENCH_ARGS)

# --- run -----------------------------------------------------------------
RUN_DIR	 = $(CURDIR)/run
RUN_USER = $(shell [ "$$(id -u)" = 0 ] && echo nobody || id -un)
ARGS	?=
run: deps all
	@mkdir -p $(RUN_DIR)
	$(BUILD)/sbin/mtad -d -f conf/mtad.conf \
	    --smtp-ip=127.0.0.1 --smtp-port=2525 \
	    --spool-dir=$(RUN_DIR)/spool --user=$(RUN_USER) \
	    --pid-file=$(RUN_DIR)/mtad.pid \
	    --control-socket=$(RUN_DIR)/control.sock \
	    --resolver-nameservers=127.0.0.1:53 $(ARGS)

# --- dependencies ----------------------------------------------------------
DEB_BUILD = gcc make pkg-config libssl-dev libevent-dev libldns-dev \
	    librabbitmq-dev libjson-c-dev libconfig-dev
DEB_TEST  = libcmocka-dev python3 python3-pytest python3-aiosmtpd swaks \
	    dnsmasq-base openssl mandoc clang libclang-rt-dev strace \
	    rabbitmq-server python3-pika
# rabbitmq-server's package would start a system broker on port 5672: a
# policy-rc.d that says no (101) keeps it down during the install, and is
# removed afterwards unless it was there before.  The tests start their
# own broker on spare ports (tests/integration/rabbitutil.py).
deps:
	@missing=$$(for p in $(DEB_BUILD) $(DEB_TEST); do \
	    dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | \
	    grep -q '^install ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	    echo "installing:" $$missing; \
	    SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
	    RC=/usr/sbin/policy-rc.d; MADE=; \
	    if [ ! -e $$RC ]; then \
	        printf '#!/bin/sh\nexit 101\n' | $$SUDO tee $$RC >/dev/null && \
	        $$SUDO chmod 755 $$RC && MADE=1; \
	    fi; \
	    $$SUDO apt-get update -qq && \
	    DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq \
	        --no-install-recommends $$missing >/dev/null; \
	    rv=$$?; [ -z "$$MADE" ] || $$SUDO rm -f $$RC; exit $$rv; \
	fi

# --- install -------------------------------------------------------------
install: all
	install -d $(DESTDIR)$(PREFIX)/sbin $(DESTDIR)$(PREFIX)/libexec/mtad
	install -m 755 $(BUILD)/sbin/mtad $(BUILD)/sbin/mtactl $(DESTDIR)$(PREFIX)/sbin/
	install -m 755 $(BUILD)/libexec/mtad/smtpd $(BUILD)/libexec/mtad/qmgr \
	    $(BUILD)/libexec/mtad/smtp $(BUILD)/libexec/mtad/resolver \
	    $(DESTDIR)$(PREFIX)/libexec/mtad/
	install -d $(DESTDIR)$(PREFIX)/share/man/man5 $(DESTDIR)$(PREFIX)/share/man/man8
	install -m 644 man/*.5 $(DESTDIR)$(PREFIX)/share/man/man5/
	install -m 644 man/*.8 $(DESTDIR)$(PREFIX)/share/man/man8/
	install -d $(DESTDIR)$(SYSTEMDDIR)
	sed -e 's|/usr/sbin/|$(PREFIX)/sbin/|g' \
	    -e 's|/etc/mtad/|$(SYSCONFDIR)/mtad/|g' conf/mtad.service \
	    > $(DESTDIR)$(SYSTEMDDIR)/mtad.service
	chmod 644 $(DESTDIR)$(SYSTEMDDIR)/mtad.service
	install -d $(DESTDIR)$(SYSCONFDIR)/mtad
	@# The sample config never replaces one that is there.
	[ -e $(DESTDIR)$(SYSCONFDIR)/mtad/mtad.conf ] || \
	    install -m 640 conf/mtad.conf $(DESTDIR)$(SYSCONFDIR)/mtad/mtad.conf

uninstall:
	rm -f $(DESTDIR)$(PREFIX)/sbin/mtad $(DESTDIR)$(PREFIX)/sbin/mtactl
	rm -rf $(DESTDIR)$(PREFIX)/libexec/mtad
	cd man && for m in *.5; do rm -f $(DESTDIR)$(PREFIX)/share/man/man5/$$m; done
	cd man && for m in *.8; do rm -f $(DESTDIR)$(PREFIX)/share/man/man8/$$m; done
	rm -f $(DESTDIR)$(SYSTEMDDIR)/mtad.service
	@echo "kept $(DESTDIR)$(SYSCONFDIR)/mtad/mtad.conf and the spool"

clean:
	rm -rf build build-san build-fuzz run

.PHONY: all check unit lint-conf run deps install uninstall clean \
	fuzz fuzz-bins fuzz-check bench

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)
