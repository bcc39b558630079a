// A checker in the testlib style (written for these tests, not testlib itself): called as
// `checker input output answer`, it scores the share of the answer's lines that the output
// has right. All right: exit 0; none: exit 1 (wrong answer); some: exit 7 with
// "points <share>" on stderr, as testlib's quitp writes it. An unreadable file: exit 3.
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

static std::vector<std::string> read_lines(const char *path, bool &ok) {
    std::ifstream in(path);
    std::vector<std::string> lines;
    ok = static_cast<bool>(in);
    for (std::string line; std::getline(in, line);) {
        while (!line.empty() && (line.back() == ' ' || line.back() == '\r')) line.pop_back();
        lines.push_back(line);
    }
    while (!lines.empty() && lines.back().empty()) lines.pop_back();
    return lines;
}

int main(int argc, char **argv) {
    if (argc < 4) {
        std::fprintf(stderr, "usage: checker input output answer\n");
        return 3;
    }
    bool ok_out = false, ok_ans = false;
    std::vector<std::string> out = read_lines(argv[2], ok_out);
    std::vector<std::string> ans = read_lines(argv[3], ok_ans);
    if (!ok_out || !ok_ans || ans.empty()) {
        std::fprintf(stderr, "cannot read the output or the answer\n");
        return 3;
    }
    size_t right = 0;
    for (size_t i = 0; i < ans.size() && i < out.size(); ++i) right += out[i] == ans[i];
    if (right == ans.size() && out.size() == ans.size()) {
        std::fprintf(stderr, "all %zu lines right\n", right);
        return 0;
    }
    if (right == 0) {
        std::fprintf(stderr, "no line right\n");
        return 1;
    }
    std::fprintf(stderr, "points %.10f %zu of %zu lines right\n",
                 static_cast<double>(right) / ans.size(), right, ans.size());
    return 7;
}
