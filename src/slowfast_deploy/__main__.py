import sys

from slowfast_deploy.cli import main

sys.exit(main())
