"""``python -m edge_infer`` is the ``edge-infer`` command."""

from edge_infer.cli import main

main()
