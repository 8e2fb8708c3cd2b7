from slmbench.cli import main

main()
