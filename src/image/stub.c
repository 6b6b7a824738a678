int image_stub_;
