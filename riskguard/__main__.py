import sys

from riskguard.faces.cli import main

sys.exit(main())
