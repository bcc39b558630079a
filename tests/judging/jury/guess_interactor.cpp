// A guess-the-number interactor in the testlib style (written for these tests): called as
// `interactor input output answer`. The input holds "n secret limit". It tells the program n,
// then answers each "? x" with "<" (the secret is smaller), ">" or "=". Found within
// ceil(log2 n) + 1 queries: exit 0; within `limit`: exit 7, "points 0.5" on stderr; more
// queries, a malformed line or the end of the program's output: exit 1 (wrong answer). It
// writes the number of queries to `output` for a checker.
#include <cstdio>
#include <cstdlib>
#include <cstring>

int main(int argc, char **argv) {
    if (argc < 4) return 3;
    FILE *input = std::fopen(argv[1], "r");
    long n = 0, secret = 0, limit = 0;
    if (!input || std::fscanf(input, "%ld %ld %ld", &n, &secret, &limit) != 3) {
        std::fprintf(stderr, "bad input file\n");
        return 3;
    }
    std::fclose(input);
    long best = 1;
    while ((1L << (best - 1)) < n) ++best;
    std::printf("%ld\n", n);
    std::fflush(stdout);
    char query[16];
    long x = 0;
    for (long asked = 1;; ++asked) {
        if (std::scanf("%15s %ld", query, &x) != 2 || std::strcmp(query, "?") != 0) {
            std::fprintf(stderr, "expected \"? x\" (query %ld)\n", asked);
            return 1;
        }
        if (asked > limit) {
            std::fprintf(stderr, "more than %ld queries\n", limit);
            return 1;
        }
        if (x == secret) {
            std::printf("=\n");
            std::fflush(stdout);
            FILE *output = std::fopen(argv[2], "w");
            if (output) {
                std::fprintf(output, "%ld\n", asked);
                std::fclose(output);
            }
            if (asked <= best) {
                std::fprintf(stderr, "found in %ld queries\n", asked);
                return 0;
            }
            std::fprintf(stderr, "points 0.5 found in %ld queries, %ld would do\n", asked, best);
            return 7;
        }
        std::printf(secret < x ? "<\n" : ">\n");
        std::fflush(stdout);
    }
}
