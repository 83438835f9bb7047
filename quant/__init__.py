"""The pure quant library: features, positions, risk and paper-broker arithmetic, no I/O."""
