from vectorseam.cli import main

main()
