#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
# gmemctl --help and gmemctl(1) must list the same commands and long options; on a mismatch, says
# exactly what to add or remove in the page. Exit 0 same, 1 different, 99 could not check.
# --control drops the page's first command before comparing: a check that cannot miss it must fail.
import os
import re
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import scdoc  # noqa: E402


def help_lists(gmemctl):
    out = subprocess.run([gmemctl, '--help'], capture_output=True, text=True, check=True).stdout
    commands, options, part = {}, set(), None
    for line in out.splitlines():
        if line in ('Commands:', 'Options:'):
            part = line
        elif not line.strip():
            part = None
        elif part == 'Commands:':
            # '  NAME ARGS<padding>HELP': the padding is 2+ spaces, or 1 when NAME ARGS is too wide.
            text = line.strip()
            name = text.split()[0]
            rest = text[len(name):]
            m = re.match(r'^\s{2,}(\S.*)$', rest)
            if m:
                args, help_text = '', m.group(1)
            else:
                m = re.match(r'^\s(.*?)\s{2,}(\S.*)$', rest)
                args, help_text = (m.group(1), m.group(2)) if m else split_wide(rest.split())
            commands[name] = (args, help_text)
        elif part == 'Options:':
            left = re.match(r'^\s+(.*?)(?:\s{2,}|$)', line).group(1)
            options.update(re.findall(r'(--[a-z][a-z-]*)', left))
    return commands, options


def split_wide(words):
    """ARGS and HELP run together: ARGS are upper-case words, [bracketed] groups and a|b choices."""
    depth = 0
    for i, w in enumerate(words):
        if not (depth or w.startswith('[') or w.isupper() or '|' in w):
            return ' '.join(words[:i]), ' '.join(words[i:])
        depth += w.count('[') - w.count(']')
    return ' '.join(words), ''


def page_lists(text):
    secs = scdoc.sections(text)
    if 'COMMANDS' not in secs or 'OPTIONS' not in secs:
        raise ValueError("no '# COMMANDS' or '# OPTIONS' section")
    options = set()
    for l in secs['OPTIONS']:
        if l.startswith('*'):
            options.update(re.findall(r'\*(--[a-z][a-z-]*)\*', l))
    return scdoc.entries(secs['COMMANDS']), options


def man_args(args):
    """'GUEST SIZE [--granule 4K|2M]' as the page writes it: _GUEST_ _SIZE_ [*--granule* ...]."""
    out = []
    for w in args.split():
        core = w.strip('[]')
        if core.startswith('-'):
            out.append(w.replace(core, '*%s*' % core))
        elif core.isupper():
            out.append(w.replace(core, '_%s_' % core))
        else:
            out.append(w)
    return ' '.join(out)


def after(names, name):
    i = names.index(name)
    return "after '%s'" % names[i - 1] if i else 'first'


def main(argv):
    control = '--control' in argv
    argv = [a for a in argv if a != '--control']
    if len(argv) != 3:
        print('usage: check-commands.py [--control] GMEMCTL PAGE.scd', file=sys.stderr)
        return 99
    gmemctl, page = argv[1], argv[2]
    try:
        commands, help_options = help_lists(gmemctl)
        text = open(page, encoding='utf-8').read()
        documented, page_options = page_lists(text)
    except (OSError, subprocess.CalledProcessError, ValueError) as e:
        print('check-commands: cannot check: %s' % e, file=sys.stderr)
        return 99
    if not commands or not documented:
        print('check-commands: found no commands in --help or in %s' % page, file=sys.stderr)
        return 99
    if control:
        print('control: %s with its entry for "%s" dropped' % (page, documented[0]))
        documented = documented[1:]

    problems = []
    for name, (args, help_text) in commands.items():
        if name not in documented:
            problems.append(
                "gmemctl --help lists the command '%s' but %s does not: add under '# COMMANDS'\n"
                "(in --help order, %s):\n\n*%s*%s\n\t%s.\n" %
                (name, page, after(list(commands), name), name,
                 ' ' + man_args(args) if args else '',
                 (help_text[:1].upper() + help_text[1:]) if help_text else 'WHAT IT DOES'))
    for name in documented:
        if name not in commands:
            problems.append("%s documents the command '%s' but gmemctl --help does not list it: remove its "
                            "entry from '# COMMANDS' (or add the command to gmemctl's table)\n" % (page, name))
    for opt in sorted(help_options - page_options):
        problems.append("gmemctl --help lists the option '%s' but %s does not: add under '# OPTIONS':\n\n"
                        "*%s*\n\tWHAT IT DOES (and which commands take it).\n" % (opt, page, opt))
    for opt in sorted(page_options - help_options):
        problems.append("%s documents the option '%s' but gmemctl --help does not list it: remove it from "
                        "'# OPTIONS'\n" % (page, opt))
    for p in problems:
        print(p)
    if problems:
        return 1
    print('gmemctl --help and %s list the same %d commands and %d options' %
          (os.path.basename(page), len(commands), len(help_options)))
    return 0


if __name__ == '__main__':
    try:
        sys.exit(main(sys.argv))
    except Exception as e:  # a crash is not a finding: 99 fails even the should_fail controls
        print('%s: cannot check: %r' % (sys.argv[0], e), file=sys.stderr)
        sys.exit(99)
