"""The command line's argument handling, one module per command family (cli.py dispatches).

The top layer: argparse namespaces stop here; everything below takes typed configs.
"""
