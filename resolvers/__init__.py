"""How each GraphQL field is answered, one module per domain.

Resolvers return rows and dataclasses; the ``schema`` package describes them.
Nothing here imports ``schema`` (dependencies point server → schema → resolvers → db).
"""
