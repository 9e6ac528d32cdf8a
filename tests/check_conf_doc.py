#!/usr/bin/python3
"""Check that the documentation agrees with the key table.

Usage: check_conf_doc.py MTAD MAN_PAGE CONF_FILE

The keys come from the program itself: `MTAD -n -v -f /dev/null` prints
one "key = value" line per key (common/conf.c conf_print).  Then:

  - every key has an entry ".It Ic KEY" in MAN_PAGE (mtad.conf.5), and
    every such entry is a key;
  - every key appears in CONF_FILE commented out as "#KEY: value", and no
    other key does;
  - CONF_FILE with those lines uncommented gives exactly the defaults;
  - `mandoc -T lint -W warning` finds nothing in any man/*.[58] (a missing
    mandoc is a failure: `make deps` installs it).

Exits 1 listing every problem, 0 when all is well.
"""

import glob
import os
import re
import shutil
import subprocess
import sys
import tempfile

KEY_LINE = re.compile(r"^([a-z][a-z0-9-]*) = (.*)$")
MAN_ENTRY = re.compile(r"^\.It Ic ([a-z][a-z0-9-]*)(?:\s|$)")
CONF_ENTRY = re.compile(r"^#([a-z][a-z0-9-]*)\s*[:=]")


def printed_conf(mtad, path):
    """Run mtad -n -v -f path; return {key: value} or raise RuntimeError."""
    proc = subprocess.run([mtad, "-n", "-v", "-f", path],
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          universal_newlines=True, timeout=60)
    keys = {}
    for line in proc.stdout.splitlines():
        m = KEY_LINE.match(line)
        if m:
            keys[m.group(1)] = m.group(2)
    if proc.returncode != 0 or not keys:
        raise RuntimeError("%s -n -v -f %s exited %d:\n%s" %
                           (mtad, path, proc.returncode, proc.stdout))
    return keys


def read_lines(path):
    with open(path, encoding="utf-8") as f:
        return f.read().splitlines()


def check_both_ways(what, keys, found):
    """Problems for keys missing from found and entries that are no key."""
    problems = []
    missing = [k for k in keys if k not in found]
    unknown = sorted(set(found) - set(keys))
    if missing:
        problems.append("%s: undocumented keys: %s" %
                        (what, ", ".join(missing)))
    if unknown:
        problems.append("%s: entries that are no key: %s" %
                        (what, ", ".join(unknown)))
    return problems


def check_man(keys, man):
    found = [m.group(1) for m in map(MAN_ENTRY.match, read_lines(man)) if m]
    return check_both_ways(man, keys, found)


def check_conf(mtad, keys, defaults, conf):
    """Every key commented out in conf, with its default value."""
    lines = read_lines(conf)
    found = [m.group(1) for m in map(CONF_ENTRY.match, lines) if m]
    problems = check_both_ways(conf, keys, found)
    dups = sorted(set(k for k in found if found.count(k) > 1))
    if dups:
        problems.append("%s: keys shown twice: %s" % (conf, ", ".join(dups)))
    uncommented = [l[1:] if CONF_ENTRY.match(l) else l for l in lines]
    with tempfile.NamedTemporaryFile("w", suffix=".conf") as tmp:
        tmp.write("\n".join(uncommented) + "\n")
        tmp.flush()
        try:
            shipped = printed_conf(mtad, tmp.name)
        except RuntimeError as e:
            return problems + ["%s uncommented does not load: %s" % (conf, e)]
    wrong = [k for k in keys if shipped.get(k) != defaults[k]]
    for k in wrong:
        problems.append("%s: %s is shown as %s, the default is %s" %
                        (conf, k, shipped.get(k), defaults[k]))
    return problems


def check_mandoc(man):
    """mandoc lint warnings of every page beside man."""
    mandoc = shutil.which("mandoc")
    pages = sorted(glob.glob(os.path.join(os.path.dirname(man) or ".",
                                          "*.[58]")))
    if mandoc is None:
        return ["mandoc is not installed (make deps installs it)"]
    problems = []
    for page in pages:
        proc = subprocess.run([mandoc, "-T", "lint", "-W", "warning", page],
                              stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT,
                              universal_newlines=True)
        if proc.returncode != 0 or proc.stdout.strip():
            problems.append("mandoc lint %s:\n%s" %
                            (page, proc.stdout.rstrip()))
    return problems


def main(argv):
    if len(argv) != 4:
        sys.stderr.write("usage: %s MTAD MAN_PAGE CONF_FILE\n" % argv[0])
        return 2
    mtad, man, conf = argv[1:]
    unreadable = [p for p in (man, conf) if not os.access(p, os.R_OK)]
    if unreadable:
        print("FAIL: cannot read %s" % ", ".join(unreadable))
        return 1
    try:
        defaults = printed_conf(mtad, "/dev/null")
    except (RuntimeError, OSError) as e:
        print("FAIL: %s" % e)
        return 1
    keys = list(defaults)
    problems = check_man(keys, man)
    problems += check_conf(mtad, keys, defaults, conf)
    problems += check_mandoc(man)
    for p in problems:
        print("FAIL: %s" % p)
    if problems:
        return 1
    print("ok: %d keys documented in %s and %s" % (len(keys), man, conf))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
