"""
Optional integrations with other libraries. Each submodule imports its
library only when it is itself imported: `import loopfree` never does.
"""
