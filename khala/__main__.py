import sys

from khala.cli.main import main

sys.exit(main())
