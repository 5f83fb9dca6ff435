#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# Each man page must render with `man --warnings -l PAGE` printing nothing on stderr (man-db exits 0 on
# troff warnings, so stderr is what tells). Exit 0 clean, 1 some page warned, 99 could not check.
# --control renders copies with a deliberate troff error (an undefined macro): the check must fail.
import os
import shutil
import subprocess
import sys
import tempfile


def main(argv):
    control = '--control' in argv
    pages = [a for a in argv[1:] if a != '--control']
    if not pages or not shutil.which('man'):
        print('check-man-render: no pages given, or no man (install-deps packaging)', file=sys.stderr)
        return 99
    env = dict(os.environ, LC_ALL='C.UTF-8', MANWIDTH='80', MAN_KEEP_FORMATTING='0')
    env.pop('MANPAGER', None)
    env.pop('PAGER', None)
    bad = 0
    with tempfile.TemporaryDirectory() as tmp:
        for page in pages:
            if not os.path.isfile(page):
                print('check-man-render: %s is missing' % page, file=sys.stderr)
                return 99
            if control:
                copy = os.path.join(tmp, os.path.basename(page))
                shutil.copyfile(page, copy)
                with open(copy, 'a', encoding='utf-8') as f:
                    f.write('.SH DELIBERATELY BROKEN\n.XQ an undefined macro\n')
                page = copy
            r = subprocess.run(['man', '--warnings', '-l', page], env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, text=True)
            if r.stderr.strip() or r.returncode != 0:
                bad += 1
                print('%s: man --warnings (exit %d):\n%s' % (page, r.returncode, r.stderr.rstrip()))
            else:
                print('%s: renders without warnings' % page)
    return 1 if bad else 0


if __name__ == '__main__':
    try:
        sys.exit(main(sys.argv))
    except Exception as e:  # a crash is not a finding: 99 fails even the should_fail controls
        print('%s: cannot check: %r' % (sys.argv[0], e), file=sys.stderr)
        sys.exit(99)
