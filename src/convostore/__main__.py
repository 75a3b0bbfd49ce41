from convostore.cli import main

main()
