#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# Keeps the man pages in step with the code. Two checks:
#   protocol PROTO_NAMES PAGE.scd: every op printed by proto-names (gmem_ops[], gmem_events[]) has a
#     '## op' heading under '# OPS' of gmem-protocol(7), every event an '*event*' entry under '# EVENTS';
#   symbols LIBGMEM.SYM PAGE.scd: every function libgmem exports is described in libgmem(3) as
#     '*gmem_name*()'.
# Exit 0 all there, 1 something missing (each line says what to add), 99 could not check.
# --control drops the first name the page documents before looking: the check must then fail.
import os
import re
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import scdoc  # noqa: E402


def protocol(proto_names, text, page, control):
    out = subprocess.run([proto_names], capture_output=True, text=True, check=True).stdout
    wanted = [tuple(l.split(' ', 1)) for l in out.splitlines()]
    secs = scdoc.sections(text)
    have = {'op': scdoc.headings(secs.get('OPS', [])), 'event': scdoc.entries(secs.get('EVENTS', []))}
    if control:
        print('control: %s without its op "%s"' % (page, have['op'][0]))
        have['op'] = have['op'][1:]
    missing = []
    for kind, name in wanted:
        if name in have[kind]:
            continue
        if kind == 'op':
            missing.append("op '%s' (proto/gmem-proto.h) is not in %s: add a '## %s' subsection under '# OPS' "
                           "(args, result, errors, as in PROTOCOL.md)" % (name, page, name))
        else:
            missing.append("event '%s' (proto/gmem-proto.h) is not in %s: add under '# EVENTS':\n*%s*\n"
                           "\tITS DATA FIELDS: when it is sent." % (name, page, name))
    return len(wanted), missing


def symbols(sym_file, text, page, control):
    syms = re.findall(r'^\s*(gmem_\w+);', open(sym_file, encoding='utf-8').read(), re.M)
    have = re.findall(r'\*(gmem_\w+)\*\(\)', text)
    if control:
        print('control: %s without "%s"' % (page, have[0]))
        have = [h for h in have if h != have[0]]
    missing = ["libgmem exports %s (client/libgmem.sym) but %s does not describe it: add '*%s*()' with "
               "what it does, under the section for its kind (CONNECTIONS, GUESTS, EVENTS, CONVERSIONS)" %
               (s, page, s) for s in syms if s not in have]
    return len(syms), missing


def main(argv):
    control = '--control' in argv
    argv = [a for a in argv if a != '--control']
    if len(argv) != 4 or argv[1] not in ('protocol', 'symbols'):
        print('usage: check-names.py [--control] protocol|symbols SOURCE PAGE.scd', file=sys.stderr)
        return 99
    check = protocol if argv[1] == 'protocol' else symbols
    try:
        text = open(argv[3], encoding='utf-8').read()
        n, missing = check(argv[2], text, argv[3], control)
    except (OSError, IndexError, subprocess.CalledProcessError) as e:
        print('check-names: cannot check: %s' % e, file=sys.stderr)
        return 99
    if n == 0:
        print('check-names: no names found in %s' % argv[2], file=sys.stderr)
        return 99
    for m in missing:
        print(m)
    if missing:
        return 1
    print('all %d names are in %s' % (n, os.path.basename(argv[3])))
    return 0


if __name__ == '__main__':
    try:
        sys.exit(main(sys.argv))
    except Exception as e:  # a crash is not a finding: 99 fails even the should_fail controls
        print('%s: cannot check: %r' % (sys.argv[0], e), file=sys.stderr)
        sys.exit(99)
