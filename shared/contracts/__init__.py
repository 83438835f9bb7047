"""Wire contracts: msgspec Structs, JSON on the wire, one module per service.

Evolution rules: new fields get defaults; a field is never retyped or reordered; readers accept
unknown fields (no ``forbid_unknown_fields`` on wire messages).
"""
