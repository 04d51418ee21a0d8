//! memblock: being written.
