"""The quant plugin of the executor."""
