//! The Loket central sync server. A skeleton until the sync issue (#3):
//! the command line and `--help` are in place so operators can see where
//! it is going; every command says plainly that it is not built yet.
