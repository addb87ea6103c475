// placeholder, replaced by the daemon entry point
int main() { return 0; }
