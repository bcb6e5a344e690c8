"""`herd dashboard`: a local web view of WebServices and their rollouts, with the caller's own
kubeconfig and identity. `views` decides what a page shows and allows (pure); `app` serves it."""
