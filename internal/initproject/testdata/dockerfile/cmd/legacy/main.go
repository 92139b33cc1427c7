// The legacy service.
package main

func main() {}
