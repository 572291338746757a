#!/bin/sh
# generate.sh BINARY: (re)creates the expected outputs of the golden CLI test
# (tests/test_golden.c) from the cases in cases.txt, by running BINARY on each.
#
# RUN IT ONLY AGAINST THE RELEASE, BEFORE A CHANGE. These files are the reference that a
# rewrite (of the CLI, its option parser, or the library underneath) is checked against byte
# for byte; regenerating them from a changed binary would make the test pass by definition
# and hide exactly the differences it exists to catch. The files in this directory were made
# from git 784934a:
#   git clone <repo> /tmp/release && cd /tmp/release && git checkout 784934a && make -j2
#   sh tests/golden/generate.sh /tmp/release/build/attnscale
# The script refuses a binary whose `--version` names another commit; set ATS_GOLDEN_GIT to
# the abbreviated hash of a new release to generate from that release on purpose.
#
# For each case NAME (see cases.txt for the format and placeholders) it writes
#   NAME.stdout    the exact bytes of stdout
#   NAME.exit      the exit status
#   NAME.FILE      each file the case wrote into @TMP@ (exit status 0 only), byte for byte
#   NAME.nonempty  the figures it wrote (.png, .svg, .pdf), one name per line: the test checks
#                  they exist and are non-empty, never their bytes
# Paths of the scratch directory and of this directory in stdout or in files are written as
# @TMP@ and @DATA@. stderr is not recorded. Cases run from the repository root, as the test.
# Input fixtures (fixtures/) are not touched: fixtures/make_fixtures.py made them.
set -eu
if [ $# -ne 1 ]; then
    echo "usage: sh $0 BINARY   (the release's build/attnscale)" >&2
    exit 2
fi
bin=$(cd "$(dirname "$1")" && pwd -P)/$(basename "$1")
[ -x "$bin" ] || { echo "generate.sh: $1 is not an executable" >&2; exit 2; }
data=$(cd "$(dirname "$0")" && pwd -P)
root=$(cd "$data/../.." && pwd -P)
want=${ATS_GOLDEN_GIT:-784934a}
version=$("$bin" --version)
case $version in
*"(git $want"*) ;;
*)
    echo "generate.sh: $bin is not the release git $want:" >&2
    echo "$version" >&2
    echo "(expected outputs come from the release only; see the header of $0)" >&2
    exit 2
    ;;
esac
scratch=$(mktemp -d /tmp/ats_golden_gen_XXXXXX)
trap 'rm -rf "$scratch"' EXIT

# Replaces the scratch and data paths by their placeholders (stdin to stdout).
normalise() {
    sed -e "s|$tmp|@TMP@|g" -e "s|$data|@DATA@|g"
}

cd "$root"
count=0
tab=$(printf '\t')
while IFS= read -r line || [ -n "$line" ]; do
    case $line in '' | '#'*) continue ;; esac
    case $line in
    *"$tab"*) name=${line%%"$tab"*}; args=${line#*"$tab"} ;;
    *) name=$line; args= ;;
    esac
    case $name in *[!A-Za-z0-9_-]* | '')
        echo "generate.sh: bad case name '$name'" >&2; exit 2 ;;
    esac
    tmp=$scratch/$name
    mkdir "$tmp"
    rm -f "$data/$name".*
    cmd=$(printf '%s\n' "$args" | sed -e "s|@DATA@|$data|g" -e "s|@TMP@|$tmp|g")
    start=$(date +%s.%N)
    set +e
    sh -c "$bin $cmd" >"$scratch/stdout" 2>"$scratch/stderr" </dev/null
    rc=$?
    set -e
    end=$(date +%s.%N)
    normalise <"$scratch/stdout" >"$data/$name.stdout"
    echo "$rc" >"$data/$name.exit"
    if [ "$rc" -eq 0 ]; then
        for f in "$tmp"/* "$tmp"/.[!.]*; do
            [ -e "$f" ] || continue
            base=$(basename "$f")
            if [ ! -f "$f" ]; then
                echo "generate.sh: $name wrote '$base', not a regular file; write files directly into @TMP@" >&2
                exit 1
            fi
            case $base in
            *.png | *.svg | *.pdf) echo "$base" >>"$data/$name.nonempty" ;;
            *) normalise <"$f" >"$data/$name.$base" ;;
            esac
        done
    fi
    count=$((count + 1))
    awk -v n="$name" -v rc="$rc" -v a="$start" -v b="$end" 'BEGIN { printf "%-36s exit %d  %6.2f s\n", n, rc, b - a }'
done <"$data/cases.txt"
echo "generate.sh: $count cases from $bin"
