"""rq job entry points. Thin on purpose: each calls one use case of formsvc.service."""
