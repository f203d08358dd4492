#!/bin/bash
# Turns a program's --help output into a man page (roff), so the man pages always say what the
# binary says. For a program with subcommands (fashionctl), each subcommand's help gets a section.
#
#   packaging/help-to-man.sh --section 8 --name fashiond /path/to/fashiond > fashiond.8
set -euo pipefail

section=1
name=""
while [ $# -gt 1 ]; do
    case "$1" in
        --section) section=$2; shift 2 ;;
        --name) name=$2; shift 2 ;;
        *) break ;;
    esac
done
[ $# -eq 1 ] || { echo "usage: help-to-man.sh --section N --name NAME PROGRAM" >&2; exit 2; }
program=$1
[ -n "$name" ] || name=$(basename "$program")

# Help text wraps at COLUMNS; a fixed width keeps the page reproducible.
export COLUMNS=80

# roff: a backslash is written \e; a line starting with '.' or "'" would be a request.
escape() { sed -e 's/\\/\\e/g' -e "s/^\\([.']\\)/\\\\\\&\\1/"; }

help=$("$program" --help)
version=$("$program" --version 2>/dev/null | head -n 1) || version=""
# The abstract is the OVERVIEW paragraph, which --help may have wrapped over several lines.
abstract=$(printf '%s\n' "$help" | awk '/^OVERVIEW: / {on=1; sub(/^OVERVIEW: /, "")} on && /^$/ {exit} on {printf "%s%s", sep, $0; sep=" "}')
upper=$(printf '%s' "$name" | tr '[:lower:]' '[:upper:]')
case "$section" in
    8) manual="System Administration" ;;
    *) manual="User Commands" ;;
esac

printf '.TH %s %s "" "%s" "%s"\n' "$upper" "$section" "$name${version:+ $version}" "$manual"
printf '.SH NAME\n%s \\- %s\n' "$name" "$(printf '%s' "$abstract" | escape)"
printf '.SH DESCRIPTION\n.nf\n'
printf '%s\n' "$help" | escape
printf '.fi\n'

# Subcommands are listed under SUBCOMMANDS: as "  name    summary".
subcommands=$(printf '%s\n' "$help" | awk '/^SUBCOMMANDS:/ {on=1; next} on && /^[^ ]/ {on=0} on && /^  [a-z]/ {print $1}' | grep -v '^help$' || true)
if [ -n "$subcommands" ]; then
    printf '.SH COMMANDS\n'
    for sub in $subcommands; do
        printf '.SS %s %s\n.nf\n' "$name" "$sub"
        "$program" "$sub" --help | escape
        printf '.fi\n'
    done
fi

case "$name" in
    fashiond) see_also='.BR fashionctl (1),\n.BR systemctl (1),\n.BR journalctl (1),\n.BR systemd.service (5)' ;;
    *) see_also='.BR fashiond (8)' ;;
esac
printf '.SH FILES\n/etc/fashiond/fashiond.toml, /var/lib/fashiond/journal, /run/fashiond/control.sock\n'
printf '.SH SEE ALSO\n%b\n' "$see_also"
