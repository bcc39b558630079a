# The guess-the-number interactor in Python, in the testlib style (see the C++ one): argv is
# input output answer; exit 0 found quickly, 7 with "points 0.5" found slowly, 1 wrong.
import sys


def main():
    with open(sys.argv[1]) as fh:
        n, secret, limit = (int(t) for t in fh.read().split()[:3])
    best = 1
    while (1 << (best - 1)) < n:
        best += 1
    print(n, flush=True)
    for asked, line in enumerate(sys.stdin, start=1):
        parts = line.split()
        if len(parts) != 2 or parts[0] != "?":
            print(f"expected '? x', got {line!r}", file=sys.stderr)
            return 1
        if asked > limit:
            print(f"more than {limit} queries", file=sys.stderr)
            return 1
        x = int(parts[1])
        if x == secret:
            print("=", flush=True)
            with open(sys.argv[2], "w") as out:
                out.write(f"{asked}\n")
            if asked <= best:
                print(f"found in {asked} queries", file=sys.stderr)
                return 0
            print(f"points 0.5 found in {asked} queries, {best} would do", file=sys.stderr)
            return 7
        print("<" if secret < x else ">", flush=True)
    print("unexpected end of the program's output", file=sys.stderr)
    return 1


sys.exit(main())
