#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# Installs the build into a temp DESTDIR with `meson install` and compares the files (and symlinks)
# there with install-tree.txt, failing on missing and on unexpected ones.
# Usage: check-install-tree.py [--control-drop|--control-add] BUILD_DIR LIST NAME=DIR...
# Each NAME=DIR is an install directory (absolute); the list writes paths as @NAME@/rest, so it holds
# for any prefix. Exit 0 same, 1 different, 99 could not check.
# --control-drop forgets the list's first line (that file must then be reported unexpected),
# --control-add expects a file nothing installs (it must then be reported missing).
import os
import subprocess
import sys
import tempfile


def read_list(path, source_root):
    """The expected paths; a line 'PATH if SRC' counts only when SRC exists in the source tree."""
    want = []
    for raw in open(path, encoding='utf-8'):
        line = raw.split('#', 1)[0].strip()
        if not line:
            continue
        if ' if ' in line:
            line, src = [x.strip() for x in line.split(' if ', 1)]
            if not os.path.exists(os.path.join(source_root, src)):
                continue
        want.append(line)
    return want


def installed(destdir, dirs):
    """Every file and symlink under destdir, as @NAME@/rest by the longest matching directory."""
    by_len = sorted(dirs.items(), key=lambda kv: (-len(kv[1]), kv[0]))
    out = []
    for root, subdirs, files in os.walk(destdir):
        for name in files + [d for d in subdirs if os.path.islink(os.path.join(root, d))]:
            path = '/' + os.path.relpath(os.path.join(root, name), destdir)
            for key, d in by_len:
                if path.startswith(d.rstrip('/') + '/'):
                    path = '@%s@%s' % (key, path[len(d.rstrip('/')):])
                    break
            out.append(path)
    return sorted(out)


def main(argv):
    mode = argv[1] if len(argv) > 1 and argv[1].startswith('--control') else None
    args = argv[2:] if mode else argv[1:]
    if len(args) < 3:
        print(__doc__ or 'usage: check-install-tree.py BUILD_DIR LIST NAME=DIR...', file=sys.stderr)
        return 99
    build, list_path = args[0], args[1]
    dirs = dict(a.split('=', 1) for a in args[2:])
    source_root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(list_path))))
    want = read_list(list_path, source_root)
    if not want:
        print('check-install-tree: %s lists nothing' % list_path, file=sys.stderr)
        return 99
    if mode == '--control-drop':
        print('control: the list without %s' % want[0])
        want = want[1:]
    elif mode == '--control-add':
        print('control: the list also expects @bindir@/gmem-not-built')
        want.append('@bindir@/gmem-not-built')
    with tempfile.TemporaryDirectory() as destdir:
        r = subprocess.run(['meson', 'install', '-C', build, '--no-rebuild', '--quiet', '--destdir', destdir],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        if r.returncode != 0:
            print('check-install-tree: meson install failed:\n' + r.stdout, file=sys.stderr)
            return 99
        have = installed(destdir, dirs)
    missing = sorted(set(want) - set(have))
    unexpected = sorted(set(have) - set(want))
    for p in missing:
        print('missing: %s (the list expects it, meson install did not put it there)' % p)
    for p in unexpected:
        print('unexpected: %s (installed, not in %s)' % (p, list_path))
    if missing or unexpected:
        print('\nThe tree as installed, in the list\'s form (review, then paste into %s):\n%s' %
              (os.path.basename(list_path), '\n'.join(have)))
        return 1
    print('%d installed files, as %s lists them' % (len(have), os.path.basename(list_path)))
    return 0


if __name__ == '__main__':
    try:
        sys.exit(main(sys.argv))
    except Exception as e:  # a crash is not a finding: 99 fails even the should_fail controls
        print('%s: cannot check: %r' % (sys.argv[0], e), file=sys.stderr)
        sys.exit(99)
