# The same checker in Python, in the testlib style (argv: input output answer; exit 0 ok,
# 1 wrong answer, 3 the checker failed, 7 partial points with "points <share>" on stderr).
import sys


def lines(path):
    with open(path, encoding="utf-8", errors="replace") as fh:
        found = [line.rstrip(" \r\n") for line in fh]
    while found and not found[-1]:
        found.pop()
    return found


def main():
    if len(sys.argv) < 4:
        print("usage: checker input output answer", file=sys.stderr)
        return 3
    try:
        out, ans = lines(sys.argv[2]), lines(sys.argv[3])
    except OSError as exc:
        print(f"cannot read: {exc}", file=sys.stderr)
        return 3
    if not ans:
        print("empty answer", file=sys.stderr)
        return 3
    right = sum(1 for a, b in zip(out, ans, strict=False) if a == b)
    if right == len(ans) and len(out) == len(ans):
        print(f"all {right} lines right", file=sys.stderr)
        return 0
    if right == 0:
        print("no line right", file=sys.stderr)
        return 1
    print(f"points {right / len(ans):.10f} {right} of {len(ans)} lines right", file=sys.stderr)
    return 7


sys.exit(main())
