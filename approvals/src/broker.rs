pub struct Broker; pub enum BrokerEvent{} pub enum DecideError{} pub struct Ticket;
