"""The torch-free core: every setting declared once (settings), run records and targets (records), the statistics
that judge seeds (stats) and the sequential design of --compare (sequential), atomic writes (files) and the
command-line flags made from the declarations (commandline). Nothing here imports torch or another folder of the
package, so records and tables read without them.
"""
