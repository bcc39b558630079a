"""A+B (two integers on a line, their sum) in every language of the judge image
(images/judge.toml), as a contestant would write it."""

from __future__ import annotations

A_PLUS_B: dict[str, str] = {
    "c": '#include <stdio.h>\nint main(void) {\n    long long a, b;\n'
         '    if (scanf("%lld %lld", &a, &b) != 2) return 1;\n'
         '    printf("%lld\\n", a + b);\n    return 0;\n}\n',
    "cpp": '#include <iostream>\nint main() {\n    long long a, b;\n    std::cin >> a >> b;\n'
           '    std::cout << a + b << "\\n";\n}\n',
    "python3": "a, b = map(int, input().split())\nprint(a + b)\n",
    "pypy3": "import sys\na, b = map(int, sys.stdin.read().split())\nprint(a + b)\n",
    "java": "import java.util.Scanner;\n\npublic class Main {\n"
            "    public static void main(String[] args) {\n"
            "        Scanner in = new Scanner(System.in);\n"
            "        long a = in.nextLong(), b = in.nextLong();\n"
            "        System.out.println(a + b);\n    }\n}\n",
    "kotlin": "fun main() {\n"
              "    val (a, b) = readLine()!!.trim().split(Regex(\"\\\\s+\")).map { it.toLong() }\n"
              "    println(a + b)\n}\n",
    "go": 'package main\n\nimport "fmt"\n\nfunc main() {\n\tvar a, b int64\n'
          '\tfmt.Scan(&a, &b)\n\tfmt.Println(a + b)\n}\n',
    "rust": "use std::io::Read;\n\nfn main() {\n    let mut s = String::new();\n"
            "    std::io::stdin().read_to_string(&mut s).unwrap();\n"
            "    let v: Vec<i64> = s.split_whitespace().map(|x| x.parse().unwrap()).collect();\n"
            '    println!("{}", v[0] + v[1]);\n}\n',
    "javascript": "const [a, b] = require('fs').readFileSync(0, 'utf8').trim().split(/\\s+/)"
                  ".map(Number);\nconsole.log(a + b);\n",
    "ruby": "a, b = STDIN.read.split.map(&:to_i)\nputs a + b\n",
    "perl": "my ($x, $y) = split ' ', <STDIN>;\nprint $x + $y, \"\\n\";\n",
    "php": "<?php\n[$a, $b] = array_map('intval', preg_split('/\\s+/', "
           "trim(stream_get_contents(STDIN))));\necho $a + $b, \"\\n\";\n",
    "haskell": "main :: IO ()\nmain = do\n  [a, b] <- map read . words <$> getContents\n"
               "  print (a + b :: Integer)\n",
    "ocaml": 'let () = Scanf.scanf " %d %d" (fun a b -> Printf.printf "%d\\n" (a + b))\n',
    "pascal": "program ab;\nvar a, b: Int64;\nbegin\n  readln(a, b);\n  writeln(a + b);\nend.\n",
    "csharp": "using System;\n\nclass Program {\n    static void Main() {\n"
              "        var p = Console.ReadLine().Split((char[])null, "
              "StringSplitOptions.RemoveEmptyEntries);\n"
              "        Console.WriteLine(long.Parse(p[0]) + long.Parse(p[1]));\n    }\n}\n",
    "lua": 'local a, b = io.read("n", "n")\nprint(a + b)\n',
    "bash": "read -r a b\necho $((a + b))\n",
    "fortran": "program ab\n  integer(8) :: a, b\n  read (*, *) a, b\n"
               "  print '(I0)', a + b\nend program ab\n",
    "d": 'import std.stdio;\n\nvoid main() {\n    long a, b;\n    readf(" %d %d", &a, &b);\n'
         "    writeln(a + b);\n}\n",
    "nim": "import strutils\n\nlet p = stdin.readLine.splitWhitespace\n"
           "echo parseInt(p[0]) + parseInt(p[1])\n",
}

#: (input, the answer): the last one's answer is wrong on purpose, so every language shows
#: that its output is really compared.
CASES = [("1 2\n", "3\n"), ("-7 7\n", "0\n"), ("123456 654321\n", "777777\n"),
         ("2 2\n", "5\n")]
VERDICTS = ["accepted", "accepted", "accepted", "wrong_answer"]
