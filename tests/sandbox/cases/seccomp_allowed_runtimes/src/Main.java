public class Main {
    public static void main(String[] args) throws Exception {
        Thread t = new Thread(() -> System.out.println("java thread ok"));
        t.start();
        t.join();
    }
}
