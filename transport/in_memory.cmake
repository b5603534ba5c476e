# catga::transport: in-memory transport
