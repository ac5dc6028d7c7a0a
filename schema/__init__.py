"""The GraphQL contract: types, inputs, enums, errors, limits and assembly.

Types here describe the rows and dataclasses that ``resolvers`` return; field
resolvers are thin and delegate to ``resolvers``.
"""
