#!/bin/sh
# Run each libFuzzer target for a bounded time on its seed corpus
# (tests/fuzz/NAME, read only) plus a scratch corpus under the build
# directory, and fail on the first crash, leak, timeout or property
# failure.  The crashing input is kept as BUILD/artifacts/NAME-crash-*;
# minimize it with  BUILD/fuzz/NAME -minimize_crash=1 -runs=10000 FILE
# and add it to tests/fuzz/NAME as a regression input.
#
#	fuzz/check.sh BUILD SECONDS NAME...
set -u
build=$1 secs=$2
# libconfig 1.5 leaks its string buffer on some syntax errors (fuzz/README)
LSAN_OPTIONS="suppressions=$(pwd)/fuzz/lsan.supp:print_suppressions=0"
export LSAN_OPTIONS
shift 2
status=0
mkdir -p "$build/artifacts" "$build/log"
for t in "$@"; do
	scratch="$build/corpus/$t"
	rm -rf "$scratch"
	mkdir -p "$scratch" "tests/fuzz/$t"
	log="$build/log/$t.log"
	# fuzz/NAME.options: more libFuzzer flags, one a line (OSS-Fuzz's
	# idea); fuzz_conf turns leak checks off while it explores, as
	# libconfig's own leaks make every check slow, and the replay below
	# checks its corpus for leaks once.
	opts=$(cat "fuzz/$t.options" 2>/dev/null)
	if "$build/fuzz/$t" -max_total_time="$secs" -timeout=10 \
	    -rss_limit_mb=2048 -max_len=8192 -print_final_stats=1 \
	    -artifact_prefix="$build/artifacts/$t-" $opts \
	    "$scratch" "tests/fuzz/$t" >"$log" 2>&1 &&
	    "$build/fuzz/$t" -runs=0 -timeout=10 -rss_limit_mb=2048 \
	    -artifact_prefix="$build/artifacts/$t-" \
	    "$scratch" "tests/fuzz/$t" >"$log.replay" 2>&1; then
		execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
		rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log")
		cov=$(grep -o 'cov: [0-9]* ft: [0-9]*' "$log" | tail -1)
		printf '%-18s ok  %ss  %s execs  %s/s  %s\n' "$t" "$secs" \
		    "$execs" "$rate" "$cov"
		grep '^KNOWN BUG' "$log" | sort -u | sed 's/^/    /'
	else
		echo "$t: FAILED (log $log)"
		cat "$log.replay" >>"$log" 2>/dev/null
		grep -E 'ERROR|property failed|SUMMARY|Test unit written|^ +#[0-9] ' \
		    "$log" | grep -v -E 'libFuzzer|fuzzer::|libc\.so' | head -30
		status=1
	fi
done
exit $status
