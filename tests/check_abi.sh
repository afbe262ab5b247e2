#!/bin/sh
# The versioning rules of docs/c-api.md ("Versioning"), checked on a shared library that
# was just built:
#   - MNV3_VERSION_STRING is MAJOR.MINOR.PATCH of the MNV3_VERSION_* macros;
#   - the SONAME is libmnv3.so.MAJOR, or libmnv3.so.0.MINOR while MAJOR is 0;
#   - the exported functions are exactly those of the symbol list, none of them added in a
#     version later than the header's (so a new function comes with a minor version bump);
#   - the pkg-config file, when given, states the same version.
# Usage: check_abi.sh LIBRARY HEADER SYMBOL-LIST [PC-FILE]
lib=$1
header=$2
list=$3
pc=$4
fail=0
say() { echo "check_abi: $*"; }
bad() { say "$*"; fail=1; }

macro() { sed -n "s/^#define MNV3_VERSION_$1 \\(.*\\)$/\\1/p" "$header"; }
major=$(macro MAJOR)
minor=$(macro MINOR)
patch=$(macro PATCH)
string=$(macro STRING | tr -d '"')
[ "$string" = "$major.$minor.$patch" ] ||
    bad "MNV3_VERSION_STRING \"$string\" is not $major.$minor.$patch (MNV3_VERSION_MAJOR.MINOR.PATCH)"

if ! command -v readelf >/dev/null 2>&1; then
    say "skipped the library checks: readelf not found"
    exit $fail
fi
if ! readelf -h "$lib" >/dev/null 2>&1; then
    say "skipped the library checks: $lib is not an ELF file"
    exit $fail
fi

if [ "$major" = 0 ]; then want_soname="libmnv3.so.0.$minor"; else want_soname="libmnv3.so.$major"; fi
soname=$(readelf -d "$lib" | sed -n 's/.*Library soname: \[\(.*\)\].*/\1/p')
[ "$soname" = "$want_soname" ] ||
    bad "$lib: SONAME is '$soname'; version $string needs '$want_soname'"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/check_abi.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT
readelf --dyn-syms -W "$lib" |
    awk '$4 == "FUNC" && $5 == "GLOBAL" && $7 != "UND" { sub(/@.*/, "", $8); print $8 }' |
    grep '^mnv3_' | LC_ALL=C sort -u >"$tmp/exported"
grep -v '^#' "$list" | awk 'NF { print $1 }' | LC_ALL=C sort -u >"$tmp/listed"
added=$(LC_ALL=C comm -23 "$tmp/exported" "$tmp/listed")
removed=$(LC_ALL=C comm -13 "$tmp/exported" "$tmp/listed")
[ -z "$added" ] || bad "exported but not in $list (a new function: list it with the new minor" \
    "version and bump MNV3_VERSION_MINOR):" $added
[ -z "$removed" ] || bad "in $list but no longer exported (a breaking change: see" \
    "docs/c-api.md, Versioning):" $removed
later=$(grep -v '^#' "$list" | awk -v M="$major" -v m="$minor" \
    'NF { split($2, v, "."); if (v[1] + 0 > M + 0 || (v[1] + 0 == M + 0 && v[2] + 0 > m + 0)) print $1 " " $2 }')
[ -z "$later" ] || bad "functions added in a version later than the header's $major.$minor" \
    "(bump MNV3_VERSION_MINOR):" $later

if [ -n "$pc" ]; then
    pc_version=$(sed -n 's/^Version: //p' "$pc")
    [ "$pc_version" = "$string" ] || bad "$pc: Version is '$pc_version', the header's is $string"
fi

if [ "$fail" = 0 ]; then
    say "version $string, $soname, $(wc -l <"$tmp/exported" | tr -d ' ') exported functions as listed"
fi
exit $fail
