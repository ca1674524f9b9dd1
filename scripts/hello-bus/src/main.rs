use shardcast::{Bus, RecvError, Subscription};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let bus: Bus<String> = Bus::builder().dispatchers(1).build()?;
    let mut sub = bus.subscribe(Subscription::to("greetings.>")?)?;
    let mut publisher = bus.publisher()?;
    publisher.publish_to_blocking("greetings.world", "hello".to_string())?;
    drop(publisher);
    loop {
        match sub.recv_blocking() {
            Ok(delivery) => println!("{}: {}", delivery.topic(), delivery.payload()),
            Err(RecvError::Lagged(n)) => eprintln!("lost {n}"),
            Err(RecvError::Closed) => return Ok(()),
        }
    }
}
