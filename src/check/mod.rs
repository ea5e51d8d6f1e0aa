//! Checkers over histories recorded under faults (pure logic, no I/O).
