int runtime_stub_;
