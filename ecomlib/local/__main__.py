"""``python -m ecomlib.local``: run the embedded AWS in the foreground (the background
process that ``ecomlib.local.server.start`` launches)."""

from ecomlib.local.server import main

main()
