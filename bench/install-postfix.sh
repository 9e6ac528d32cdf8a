#!/bin/sh
# Install Debian's postfix for the benchmarks (smtp-source, smtp-sink and
# Postfix itself as the peer) without letting it take port 25 or change
# the system's mail setup: debconf answers "No configuration", a
# policy-rc.d that forbids starting services is in place during apt-get
# (ours only when none exists, removed afterwards), and afterwards the
# system instance is stopped if something started it anyway.  Quiet when
# postfix is already installed.
set -eu

if dpkg-query -W -f='${Status}\n' postfix 2>/dev/null |
    grep -q '^install ok installed'; then
	exit 0
fi

SUDO=
[ "$(id -u)" = 0 ] || SUDO=sudo

echo "installing postfix (No configuration, services not started)"
echo "postfix postfix/main_mailer_type select No configuration" |
    $SUDO debconf-set-selections

ours=
if [ ! -e /usr/sbin/policy-rc.d ]; then
	printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
	$SUDO chmod 755 /usr/sbin/policy-rc.d
	ours=1
fi
rc=0
$SUDO apt-get update -qq || true
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq \
    --no-install-recommends postfix >/dev/null || rc=$?
[ -n "$ours" ] && $SUDO rm -f /usr/sbin/policy-rc.d
[ "$rc" = 0 ] || exit "$rc"

# No system postfix may run: stop it through its own pid file, if any.
if [ -f /var/spool/postfix/pid/master.pid ] &&
    $SUDO postfix status >/dev/null 2>&1; then
	$SUDO postfix stop >/dev/null 2>&1 || true
fi
if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
	$SUDO systemctl disable --now postfix >/dev/null 2>&1 || true
fi
exit 0
