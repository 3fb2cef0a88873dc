"""Pure rules of bulk import: no I/O, testable in microseconds."""
