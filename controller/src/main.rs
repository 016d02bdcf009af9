fn main() {
    print!("{}", mesos_operator::crd::to_yaml().unwrap());
}
