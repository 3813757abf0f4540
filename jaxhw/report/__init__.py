"""Words, tables and figures from results: the homework report (``contents``, one module per problem, rendered
by ``document``) and every command's output files (``outputs``). Nothing here computes a new number."""
