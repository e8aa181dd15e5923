//! Scripted HTTP receivers (see the worker tests).
