"""``python -m bydata``: the same command line as the ``bydata`` script."""

from bydata.cli import app

app()
