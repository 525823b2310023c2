// The residual R read at row r (prepended by ops/gemm.ts when its rows are not read through a pair table).
fn resRow(r: u32) -> u32 { return r; }
