"""What the executor keeps in JetStream: ``streams`` (created at start-up), ``store`` (reading
status records) and ``statuswriter`` (writing them in durable batches)."""
