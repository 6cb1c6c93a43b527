"""Meta-RL methods as plug-ins: `registry` lists them, `protocol` is what each implements (docs/adding-a-method.md).

Each sub-package is one family of methods (MCAT and its ablations: `mcat`) and declares its methods in
`METHODS`; the registry finds them.
"""
