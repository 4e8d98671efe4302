import sys

from gateway._host.cli import main

sys.exit(main())
