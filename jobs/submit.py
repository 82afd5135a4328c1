"""Entry point for spark-submit: `spark-submit --master URL jobs/submit.py nightly --config F ...`.

Runs the same `c360` command line; the Spark session then takes its master and resources from spark-submit.
"""

import sys

from c360.cli import main

if __name__ == "__main__":
    sys.exit(main())
