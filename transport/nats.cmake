# catga::nats: JetStream transport
